"""The failover controller: which broker of each group is master, at which epoch, with which
in-sync replicas (RocketMQ 5's controller mode). ``state`` is the replicated state machine,
``liveness`` the leader-local view of heartbeats; both are sans-IO."""
