"""The railway service: may this passenger buy this ticket?"""
