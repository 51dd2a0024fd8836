"""What workers do with each kind of task: batch_predict's plan, shards and assembly,
and drift reports."""
