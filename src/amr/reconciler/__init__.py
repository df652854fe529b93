"""amr.reconciler"""
