"""amr.gateway"""
