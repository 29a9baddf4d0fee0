// EventRing
