"""amr.pki"""
