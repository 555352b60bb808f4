// Test vector 1 of docs/formats/envelope.md (generated once; decrypt-only).
#pragma once

namespace envelope_vector1 {
inline constexpr const char* kX25519Kid = "f6ad3128ae97768ce38d99bb67e0aaea8cb7afd4aff8c8614aa515d01a5c3794";
inline constexpr const char* kX25519Private = R"PEM(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VuBCIEIFAc4XfwLQEtFS3Ng+Xjo9ceotWZlOX2UPOomFna62tj
-----END PRIVATE KEY-----
)PEM";
inline constexpr const char* kP256Kid = "28fb15089c504a0ed875ff42cbf433093261308f6f443e3407af5c558d9c2ad1";
inline constexpr const char* kP256Private = R"PEM(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTXmC9huwbx/ZkOQ3
UHTAwkjit0W9RpWyK+5vHx+uRWyhRANCAAQKsQ5SHDt3vNx6G28uP98mYAtKNK4F
M6ctno2JW8uqK5IRh0q8Xc8C1VwrBfcG+gi1MCUx32Ypje3/EJCjzSO0
-----END PRIVATE KEY-----
)PEM";
inline constexpr const char* kRSAKid = "c93c0fec46ca278a43f8e92799f248289dcd797b531e38823cac2d7e7650cbc3";
inline constexpr const char* kRSAPrivate = R"PEM(-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCgugUxW6Vg4gn0
3xHD6mAH8s0UYUWcFwSZhJ5IOH/e2NkFuwmwPj4OUe+ntbh6us8oiKlpP/IcdwXk
ivuucVpqohpcOW9QCyE8jgvydRiqVAsFUzEWsqPoJFNjs49KcRS9l8fOJJEMGfDI
ShpIDdtXLDvCZsTsih87jiJpNhcCNUStaNFRiiTI4+MC8Kpwqq1RJiRWTUcTA6jQ
rEnQr+Pi/8avzSmHFGuBoanDz2pVCKP1kKoW5e/Di2vu6OJXB8GvJDf8xLyJEmw7
KcchfVPGBVn9Lo1qa5Mi+hHqTfWiqZH9Lg3NMtPv/Z3VL/R7A+iJ/9IN7eG6p6gV
PrSzEz3xAgMBAAECggEAEf0f7alLNi+2W5DH5TyLKPiU2W4Vo2W0HxaHvJ+OODve
9lQ7vl0JBwNGpmehUSMtYmUBSQVeLK9pmm2vw5NuQjcIakAHZFcKjkN7tNREQXQM
k7j+6oJt8+J07ti+9d74KkwdkcXn8gnJODGLBXt/jB8oRRbJfYvr+PdshIgIRTfR
ouMw2L6JaP7k+tb9Dkse3MLaJRyaDo2Bu1BP4NHCvNohHFz5fcVAU+A8PRgMmC/2
5qnQAIapwyp5jsFMH21DBfCW49iGZASG8TIUspuGJaLuV2uCVAQLYwzjJvANLtJ9
5yQ4VdkYjbuMwyhQ1B1vzNcXdFC6oMqJrRw8GtJdEQKBgQDLsvUskWRcphQNiFLc
xyubXZ5E3tLfZa0YDwF7P1o0u40K0gPWEIxGobh4uLsNMmEnUkSLfWkucR58qauW
s3z0yjlMb2Xn46E3UDZZ4tDI/6j674W5TTJN4Mxw3XoHqwyMwx1XSMrYNp1uVSVS
EuC7BHZsTCd0EC4cQkVDo3K/bQKBgQDJ/oGdATmQurDpjnD+ca7qB0t2WH6oNDYh
4b1nC9myIlt0wWinp0w3H57q/DOceQPd/X3vZsCymYLK3Ev1TZE025Ph8HC6CFrf
EhMEGTehu/UiavSbl0KTOXGBOfKsW4MHVWxqo8RsJZDSC4nrXr1fxQaT4c7XbuSJ
bZ/gtTdyFQKBgQCxfbj2YaWyuR/F/uA88etEUJnE5ueVstHVodWnn7cpNbcbE442
K2sfbHEB9+08/YX8Lkn9xYQt7HElLO6PvMwHvGGbAYIpQYZLXUBOqD1GtsZ2CNlb
cjF//H4HZmSbY+bmjGj3kjz1kvkwl06SqlJZgvTxPpYuIp8bDn+uBTDKLQKBgQCu
nZLSdRKcaKcy3+4SJ5h7ux6jCdFD+w6or4qaIAZrFYRWJDQial9ab71jie3b4ElV
iCNr5znBqy8Dyvjm780NEpx+fuoUB9D2cZt6uYn8CI3a2Pbn4hStTMUwXzXHhbx5
hIEalsPgcYEF8u+hRt8SgTI0eMnkNnrdyqShDkcGGQKBgFyEPTXppAP1UQiIkv7G
DPCwOSAnsEdHNFANs4YlpjsGFWazRrjDDzJuiGU0CCS06dUJ44X0GXvR1ujhQVmr
G9WmnSVA+VKzi7Ky4KQ+CJz+kLkVfvUZA4DapNFsm6FlbsypcNhb8rVP0js9Mgen
Qw2GLY9ce295NXSmaIZIq+G1
-----END PRIVATE KEY-----
)PEM";
inline constexpr const char* kEnvelope =
    R"JSON({"content":{"alg":"A256GCM","ciphertext":"U0Gpalgt8GsAmtiYp1ov50NY+CVxsrvBFjJmHBgfasFwcXpaP8vFB06wmryP","nonce":"H3Qjf89vzOTocpQO"},"kem":null,"recipients":[{"alg":"X25519+HKDF-SHA256+A256GCM","epk":"MCowBQYDK2VuAyEAQ3Dm1nw+XA1XsvW7f7gCe1vPFWx+YJpBgmquRK9yJmo=","kid":"f6ad3128ae97768ce38d99bb67e0aaea8cb7afd4aff8c8614aa515d01a5c3794","nonce":"rqTHnngeWy8bThOU","wrapped_key":"igxsFSMKa5pT/D2N/cIBldS2b5QTcYFsVcKKTz05Yo4o8E9G96G5UcBbiK3wFXNp"},{"alg":"ECDH-P256+HKDF-SHA256+A256GCM","epk":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2sOSTDISK+zlE+RRq98Ou6EGvp6wn6RU0jgxNsOYKhUzF1lO4SexG3zKJWhQjrPMFxkIukax8JKXdq41CzErdw==","kid":"28fb15089c504a0ed875ff42cbf433093261308f6f443e3407af5c558d9c2ad1","nonce":"gShMHofgOVllYQES","wrapped_key":"igpVHtZrnwyDFFqisJjVAnZpzPs8fvYuhjM+njJAX60jdaMnM4hjZuEnsiJFXfgZ"},{"alg":"RSA-OAEP-256","kid":"c93c0fec46ca278a43f8e92799f248289dcd797b531e38823cac2d7e7650cbc3","wrapped_key":"j45dx7fd3Eh9WxP4JMV9X0RjFXk5/fv1m/BTlxDi6Yxqm2XuRLG4Ps/wUgvpuZnsb3WWFxhmzz0qXnjNN4avRG+YCbU/F15NQyEVl/UkyDFO2Zm0u5CTx/IDg4V78/gM2gkqN4TF2hd6itAv+3Cg6vyEKJT8ifyr6tuzms4VvOPC3/db4LYVlwBvAlZ+Z7u/bjQ+KzkDYsJvBNoBvzJatovWYuz5VjPqj4DNrIWasKUhHd92GniaTkkd6EiHdLjgK7NuJEFRvtSa4dp6R2iDVftkkMQ1l1DxG3+lRBVJfuzHKiqeZDLQkO8fZYkYFlxc2tVm8U/lqgU1oeKbQJuWvA=="}],"vellum_envelope":1})JSON";
inline constexpr const char* kPlaintext = "vellum envelope test vector 1";
inline constexpr const char* kAad = "doc-42";
}  // namespace envelope_vector1
