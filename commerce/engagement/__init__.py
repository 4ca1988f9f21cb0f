"""What shoppers say and keep: reviews of what they bought, and named wishlists."""
