"""The scheduler daemon, the DAG file processor and the executors."""
