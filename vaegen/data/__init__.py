"""Datasets: named IDX datasets (named), image folders (folders), ImageSet
(sets), and loading any of them under the one held-out rule (load)."""
