"""amr.store"""
