"""Analytics: figures over time for vendors and operators, computed from the orders, the
ledger and the stock they describe, so they reconcile with them exactly."""
