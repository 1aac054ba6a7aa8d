"""Virality signals as pure maths over counters, shared by the agents and offline tools."""
