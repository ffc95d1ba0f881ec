"""Word importance: attribution methods and the selectors built on them."""
