"""amr.nodes"""
