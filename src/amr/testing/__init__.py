"""amr.testing"""
