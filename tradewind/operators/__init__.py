"""Operators that ship with Tradewind: python, bash, empty."""
