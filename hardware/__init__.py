"""Board files, shipped inside the release so ``learnae-gateway flash`` finds them."""
