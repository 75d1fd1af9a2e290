"""Offline rules behind the real analyzer and enricher: pure functions of a text and its language.

Every pattern here runs in time linear in the text (no nested quantifiers over overlapping
characters), so a hostile document costs no more than a long one.
"""
