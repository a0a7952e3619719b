"""charging"""
