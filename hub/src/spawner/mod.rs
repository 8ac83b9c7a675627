//! Client of `sudohub-spawner`: runs it through sudo and drives a server's life cycle.
