"""BGP edge: ExaBGP's JSON in, EVPN commands out. Importing the package imports no exabgp."""
