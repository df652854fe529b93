"""amr.api"""
