"""The domain and the store: identifiers, records, accounts and the LMDB change log."""
