"""The procurement service: may this company bid for this tender?"""
