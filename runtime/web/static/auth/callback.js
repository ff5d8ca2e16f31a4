// The OIDC provider returns the ID token in the fragment: keep it in a cookie only this site receives
// (the edge function validates it on every request), then go back to the page first asked for.
(function () {
  var params = new URLSearchParams(window.location.hash.slice(1));
  var token = params.get("id_token");
  var back = params.get("state") || "/";
  if (token) {
    document.cookie = "ttp_id_token=" + token + "; Path=/; Secure; SameSite=Strict; Max-Age=3600";
  }
  window.location.replace(back.charAt(0) === "/" ? back : "/");
})();
