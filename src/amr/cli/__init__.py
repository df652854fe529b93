"""amr.cli"""
