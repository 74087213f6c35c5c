"""Plots and tables people look at: score distributions, kept vs pruned samples, result tables."""
