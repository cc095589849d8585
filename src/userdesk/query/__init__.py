"""The one query language of the Users list, segments, exports, bulk actions and `q=`."""
