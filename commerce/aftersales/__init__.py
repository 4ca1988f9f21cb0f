"""After-sales: refunds, returns and disputes."""
