// libcrypto's SHA-256 (libssl-dev): the low-level functions keep their state in a plain struct, so hashing allocates
// nothing and a state copies by value. OpenSSL 3 marks them deprecated in favour of EVP, whose contexts are heap
// objects.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
