"""Finance: the vendor ledger, payouts and invoices."""
