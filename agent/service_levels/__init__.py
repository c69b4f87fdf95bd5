"""Each comune's service levels: the contract's levels, their targets and the arithmetic of due times.

``config`` holds the tenant's table (``tenants.X.service_levels``), ``targets``
the "8 working hours" / "2 working days" / "4 clock hours" values, ``clock``
the due-time arithmetic on the business calendar, ``mapping`` which level an
incident gets; compliance and penalties are computed from the tickets table.
"""
