"""LifeVision (SMS and e-mail member dialogue): client, callback signatures and views, what its
callbacks mean for deliveries and the ledger, its actors, its provider class and a fake server."""
