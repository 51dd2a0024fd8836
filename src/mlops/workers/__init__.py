"""Background workers: batch inference jobs on a durable queue in the platform database,
and drift monitoring of live traffic."""
