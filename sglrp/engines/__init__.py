"""The engines that compute the analyses behind sglrp's public classes."""
