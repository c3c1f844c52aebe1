"""Building blocks of the ct-pipeline DAGs: the stack's configuration, step tasks, the gate's branch,
promotion, notifications."""
