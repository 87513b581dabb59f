"""The parquet recording format and the durable files behind it, shared by recorder, hindsight and viewer.

Modules: ``layout`` (names and schema pieces), ``builder`` (rows to arrow),
``writer`` (parquet files), ``reader`` (what a file holds), ``grid`` (which
frames become rows), ``records`` (the CRC-framed record format of journals
and buffers) and ``durable`` (atomic files, directory fsync).
"""
