"""The catalog: vendors, categories, products, variants, stock."""
