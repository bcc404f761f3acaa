"""Kafka consumer groups: the classic group protocol (Join/Sync/Heartbeat/LeaveGroup) and offsets."""
