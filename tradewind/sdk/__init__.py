"""The authoring API that DAG files import (re-exported from `tradewind`)."""
