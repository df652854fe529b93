"""amr.ha"""
