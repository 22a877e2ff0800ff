"""Step 1 of the flow: find manifest files, parse YAML keeping positions, check them against
the schemas, resolve secret references, and build `Desired` with every problem as a value.
"""
