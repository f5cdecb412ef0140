"""sharelift: migrate file shares into OneDrive for Business and SharePoint Online.

The public surface is small and grows with the product; everything else lives in
private-by-convention modules and may change between releases.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
