"""Go modules: module paths and their case-encoding today; the GOPROXY
protocol (list, info, mod, zip) comes with its own issue."""
