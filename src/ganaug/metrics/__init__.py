"""Quality of synthetic images measured in a domain classifier's feature space."""
