-- wrk script for the Clougistic simulator: POSTs a valid ~1 KB Demand envelope to the
-- enqueue route, each request with its own reference (SIM-<run>-<thread>-<n>).
-- Key and entity come from the environment (SIM_KEY, SIM_ENTITY).
local counter, threads = 1, {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  n = 0
  run = tostring(os.time())
  key = os.getenv("SIM_KEY") or "bench-key-0123456789"
  entity = os.getenv("SIM_ENTITY") or "1"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  head = '{"access_key":"' .. key .. '","entity_id":"' .. entity .. '","payload":{"reference":"SIM-' .. run .. '-' .. id .. '-'
  tail = '","source_id":"webshop1","status":0,"type":0,"currency":"EUR","created_at":"2026-11-20 10:00:00",' ..
    '"shipping_firstname":"Ada","shipping_lastname":"Lovelace","shipping_street":"Keizersgracht",' ..
    '"shipping_housenumber":"12","shipping_postcode":"1015 CX","shipping_city":"Amsterdam","shipping_country":"NL",' ..
    '"shipping_email":"ada@example.org","shipping_phone":"+31 20 123 4567","shipping_method":"flatrate_flatrate",' ..
    '"billing_firstname":"Ada","billing_lastname":"Lovelace","billing_street":"Keizersgracht","billing_housenumber":"12",' ..
    '"billing_postcode":"1015 CX","billing_city":"Amsterdam","billing_country":"NL","billing_email":"ada@example.org",' ..
    '"options":{"carrier":{"name":"flatrate_flatrate","type":"0000"},"info":"bench"},' ..
    '"items":[{"sku":"SKU-1","description":"Widget","qty":2,"unit_price":"9.95","reference":"1"},' ..
    '{"sku":"SKU-2","description":"Gadget","qty":1,"unit_price":"19.50","reference":"2"},' ..
    '{"sku":"SKU-3","description":"Gizmo with a longer description","qty":3,"unit_price":"4.25","reference":"3"}]}}'
end
function request()
  n = n + 1
  wrk.body = head .. n .. tail
  return wrk.format()
end
statuses = {}
function response(status, headers, body)
  if status ~= 200 then statuses[status] = (statuses[status] or 0) + 1 end
end
