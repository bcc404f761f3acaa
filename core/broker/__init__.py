"""core/broker"""
