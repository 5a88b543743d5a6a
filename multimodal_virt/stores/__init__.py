"""Stats stores: where collectors publish samples and schedulers read them."""
