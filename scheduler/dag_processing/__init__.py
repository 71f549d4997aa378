"""The DAG file processor: finds DAG files, parses them in children, stores the results."""
