"""Causal LMs converted to Core ML: conversion in both cache forms, a program as a CausalLM, checks."""
