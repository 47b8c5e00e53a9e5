"""An example Fabric workload's job handlers: forecast an item's sales, then export the forecast as CSV."""
