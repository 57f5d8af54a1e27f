"""Network policy over the overlay: nftables at the leaf, fed by EVPN state.

    config (schema.py) --> PolicySpec (model.py) --+
    the core's endpoints per VNI (CoreViews.endpoints) --> compile.py (pure) --> Ruleset
    Ruleset vs the kernel's `table bridge evpnd` / `table inet evpnd` --> reconcile.py (pure)
    --> one JSON transaction --> nft.py (libnftables) ; enforcer.py (the asyncio edge)

Nothing is imported here, so importing a pure module does not load the edges.
"""
