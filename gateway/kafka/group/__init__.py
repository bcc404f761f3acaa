"""Kafka consumer groups: the classic group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) and offsets."""
