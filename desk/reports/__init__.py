"""Reports built from the store. weekly/: the weekly public-response report."""
